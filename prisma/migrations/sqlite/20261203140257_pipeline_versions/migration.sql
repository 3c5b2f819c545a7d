-- CreateTable
CREATE TABLE "PipelineVersion" (
    "pipelineId" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "nodes" TEXT NOT NULL,
    "edges" TEXT NOT NULL,
    "maxRetriesPerNode" INTEGER NOT NULL,
    "timeoutSeconds" INTEGER NOT NULL,
    "maxConcurrency" INTEGER,
    "breakerFailureThreshold" INTEGER NOT NULL,
    "breakerRecoveryTimeoutMs" INTEGER NOT NULL,
    "createdAt" DATETIME NOT NULL,

    PRIMARY KEY ("pipelineId", "version"),
    CONSTRAINT "PipelineVersion_pipelineId_fkey" FOREIGN KEY ("pipelineId") REFERENCES "Pipeline" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- Pipelines stored before this migration keep their current definition as their one version
-- (the earlier ones were not kept).
INSERT INTO "PipelineVersion" ("pipelineId", "version", "name", "nodes", "edges", "maxRetriesPerNode", "timeoutSeconds", "maxConcurrency", "breakerFailureThreshold", "breakerRecoveryTimeoutMs", "createdAt")
SELECT "id", "version", "name", "nodes", "edges", "maxRetriesPerNode", "timeoutSeconds", "maxConcurrency", "breakerFailureThreshold", "breakerRecoveryTimeoutMs", "updatedAt" FROM "Pipeline";
