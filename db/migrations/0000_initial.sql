CREATE SEQUENCE "public"."agent_session_epoch" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1;--> statement-breakpoint
CREATE TABLE "agent_presence" (
	"runner_id" varchar(255) PRIMARY KEY NOT NULL,
	"instance_id" varchar(64) NOT NULL,
	"session_epoch" bigint NOT NULL,
	"boot_id" varchar(100),
	"agent_version" varchar(100),
	"declared_commands" jsonb,
	"connected_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_seen" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "alerts" (
	"id" serial PRIMARY KEY NOT NULL,
	"key" varchar(255) NOT NULL,
	"severity" varchar(20) NOT NULL,
	"message" text NOT NULL,
	"runner_id" varchar(255),
	"checkpoint_name" varchar(64),
	"opened_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_sent_at" timestamp with time zone,
	"resolved_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "audit_log" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"actor" varchar(100) NOT NULL,
	"action" varchar(100) NOT NULL,
	"target" varchar(255),
	"detail" jsonb,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "checkpoint_transitions" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"checkpoint_name" varchar(64) NOT NULL,
	"runner_id" varchar(255) NOT NULL,
	"seq" integer NOT NULL,
	"from_state" varchar(50),
	"to_state" varchar(50) NOT NULL,
	"event" varchar(100) NOT NULL,
	"detail" text,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "checkpoints" (
	"id" serial PRIMARY KEY NOT NULL,
	"name" varchar(64) NOT NULL,
	"runner_id" varchar(255) NOT NULL,
	"job_id" varchar(255) NOT NULL,
	"project_id" varchar(255),
	"backend" varchar(50) NOT NULL,
	"state" varchar(50) NOT NULL,
	"holds_claim" boolean DEFAULT false NOT NULL,
	"finalize_status" varchar(50),
	"finalize_source" varchar(100),
	"finalize_queued_at" timestamp with time zone,
	"caller" varchar(255),
	"needs_attention_reason" varchar(100),
	"detail" text,
	"vmid" integer,
	"ttl_extensions" integer DEFAULT 0 NOT NULL,
	"epoch_at_reset" bigint,
	"projection_seq" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_done_at" timestamp with time zone,
	"reset_started_at" timestamp with time zone,
	"ready_at" timestamp with time zone,
	"ended_at" timestamp with time zone,
	CONSTRAINT "ck_checkpoint_state" CHECK ("checkpoints"."state" in ('creating','created','finalize_queued','cleaning','pausing','confirming_idle','resetting','awaiting_readiness','releasing_claim','unpausing','needs_attention','deleted','reset','gc_reset','create_failed','released')),
	CONSTRAINT "ck_checkpoint_finalize_status" CHECK ("checkpoints"."finalize_status" is null or "checkpoints"."finalize_status" in ('success','failure','canceled'))
);
--> statement-breakpoint
CREATE TABLE "controller_instances" (
	"instance_id" varchar(64) PRIMARY KEY NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_seen" timestamp with time zone DEFAULT now() NOT NULL,
	"draining" boolean DEFAULT false NOT NULL
);
--> statement-breakpoint
CREATE TABLE "controller_settings" (
	"key" varchar(100) PRIMARY KEY NOT NULL,
	"value" jsonb NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "node_leases" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"node_key" varchar(255) NOT NULL,
	"holder" varchar(255) NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "runners" (
	"id" serial PRIMARY KEY NOT NULL,
	"runner_id" varchar(255) NOT NULL,
	"backend" varchar(50) NOT NULL,
	"token_hash" varchar(64) NOT NULL,
	"proxmox_host" varchar(255),
	"proxmox_user" varchar(255),
	"proxmox_token_name" varchar(255),
	"proxmox_token_value" text,
	"proxmox_node" varchar(255),
	"proxmox_vmid" integer,
	"reset_cmd" text,
	"cleanup_cmd" text,
	"readiness_cmd" text,
	"gitlab_runner_id" integer,
	"tags" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"options" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"source" varchar(20) DEFAULT 'api' NOT NULL,
	"is_active" boolean DEFAULT true NOT NULL,
	"drained" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "ck_runner_backend" CHECK ("runners"."backend" in ('proxmox', 'bare_metal')),
	CONSTRAINT "ck_runner_source" CHECK ("runners"."source" in ('inventory', 'api'))
);
--> statement-breakpoint
CREATE TABLE "webhook_inbox" (
	"event_id" varchar(200) PRIMARY KEY NOT NULL,
	"provider" varchar(20) NOT NULL,
	"job_id" varchar(255),
	"status" varchar(50),
	"payload" jsonb NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	"processed_at" timestamp with time zone,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp with time zone DEFAULT now() NOT NULL,
	"outcome" varchar(100),
	"last_error" text
);
--> statement-breakpoint
CREATE UNIQUE INDEX "ix_alerts_open_key" ON "alerts" USING btree ("key") WHERE "alerts"."resolved_at" is null;--> statement-breakpoint
CREATE UNIQUE INDEX "ix_transitions_name_seq" ON "checkpoint_transitions" USING btree ("checkpoint_name","seq");--> statement-breakpoint
CREATE INDEX "ix_transitions_at" ON "checkpoint_transitions" USING btree ("at");--> statement-breakpoint
CREATE UNIQUE INDEX "ix_checkpoints_name" ON "checkpoints" USING btree ("name");--> statement-breakpoint
CREATE INDEX "ix_checkpoints_runner_id" ON "checkpoints" USING btree ("runner_id","created_at");--> statement-breakpoint
CREATE INDEX "ix_checkpoints_job_id" ON "checkpoints" USING btree ("job_id");--> statement-breakpoint
CREATE INDEX "ix_checkpoints_state" ON "checkpoints" USING btree ("state");--> statement-breakpoint
CREATE INDEX "ix_checkpoints_created_at" ON "checkpoints" USING btree ("created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "ix_one_claim_per_runner" ON "checkpoints" USING btree ("runner_id") WHERE "checkpoints"."holds_claim";--> statement-breakpoint
CREATE UNIQUE INDEX "ix_node_leases_holder" ON "node_leases" USING btree ("node_key","holder");--> statement-breakpoint
CREATE UNIQUE INDEX "ix_runners_runner_id" ON "runners" USING btree ("runner_id");--> statement-breakpoint
CREATE UNIQUE INDEX "ix_runners_token_hash" ON "runners" USING btree ("token_hash");--> statement-breakpoint
CREATE INDEX "ix_webhook_inbox_pending" ON "webhook_inbox" USING btree ("next_attempt_at") WHERE "webhook_inbox"."processed_at" is null;