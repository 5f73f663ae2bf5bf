CREATE TABLE "agent_last_sessions" (
	"runner_id" varchar(255) PRIMARY KEY NOT NULL,
	"session_epoch" bigint NOT NULL,
	"boot_id" varchar(100),
	"agent_version" varchar(100),
	"connected_at" timestamp with time zone NOT NULL,
	"last_seen_at" timestamp with time zone NOT NULL,
	"disconnected_at" timestamp with time zone DEFAULT now() NOT NULL
);
