ALTER TABLE "runners" ADD COLUMN "agent_token_hash" varchar(64);--> statement-breakpoint
CREATE UNIQUE INDEX "ix_runners_agent_token_hash" ON "runners" USING btree ("agent_token_hash");