-- CreateTable
CREATE TABLE "Pipeline" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "nodes" TEXT NOT NULL,
    "edges" TEXT NOT NULL,
    "maxRetriesPerNode" INTEGER NOT NULL,
    "timeoutSeconds" INTEGER NOT NULL,
    "maxConcurrency" INTEGER,
    "breakerFailureThreshold" INTEGER NOT NULL,
    "breakerRecoveryTimeoutMs" INTEGER NOT NULL,
    "runCount" INTEGER NOT NULL DEFAULT 0,
    "successCount" INTEGER NOT NULL DEFAULT 0,
    "errorCount" INTEGER NOT NULL DEFAULT 0,
    "version" INTEGER NOT NULL DEFAULT 1,
    "createdAt" DATETIME NOT NULL,
    "updatedAt" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "PipelineRun" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "pipelineId" TEXT NOT NULL,
    "pipelineVersion" INTEGER NOT NULL,
    "status" TEXT NOT NULL,
    "triggerData" TEXT,
    "error" TEXT,
    "definition" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL,
    "startedAt" DATETIME,
    "completedAt" DATETIME,
    "deadlineAt" DATETIME,
    "ownerId" TEXT,
    "leaseExpiresAt" DATETIME,
    "cancelRequested" BOOLEAN NOT NULL DEFAULT false,
    CONSTRAINT "PipelineRun_pipelineId_fkey" FOREIGN KEY ("pipelineId") REFERENCES "Pipeline" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "NodeRun" (
    "runId" TEXT NOT NULL,
    "nodeId" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "attempts" INTEGER NOT NULL,
    "output" TEXT,
    "error" TEXT,
    "startedAt" DATETIME,
    "completedAt" DATETIME,

    PRIMARY KEY ("runId", "nodeId"),
    CONSTRAINT "NodeRun_runId_fkey" FOREIGN KEY ("runId") REFERENCES "PipelineRun" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "RunEvent" (
    "runId" TEXT NOT NULL,
    "seq" INTEGER NOT NULL,
    "type" TEXT NOT NULL,
    "nodeId" TEXT,
    "attempt" INTEGER,
    "at" DATETIME NOT NULL,
    "data" TEXT,

    PRIMARY KEY ("runId", "seq"),
    CONSTRAINT "RunEvent_runId_fkey" FOREIGN KEY ("runId") REFERENCES "PipelineRun" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "NodeBreaker" (
    "pipelineId" TEXT NOT NULL,
    "nodeId" TEXT NOT NULL,
    "state" TEXT NOT NULL,
    "failureCount" INTEGER NOT NULL,
    "openedAt" DATETIME,
    "trialStartedAt" DATETIME,
    "updatedAt" DATETIME NOT NULL,

    PRIMARY KEY ("pipelineId", "nodeId"),
    CONSTRAINT "NodeBreaker_pipelineId_fkey" FOREIGN KEY ("pipelineId") REFERENCES "Pipeline" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE INDEX "PipelineRun_pipelineId_id_idx" ON "PipelineRun"("pipelineId", "id");

-- CreateIndex
CREATE INDEX "PipelineRun_status_leaseExpiresAt_idx" ON "PipelineRun"("status", "leaseExpiresAt");

