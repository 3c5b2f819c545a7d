-- CreateIndex
CREATE INDEX "PipelineRun_pipelineId_status_id_idx" ON "PipelineRun"("pipelineId", "status", "id");

-- CreateIndex
CREATE INDEX "PipelineRun_status_id_idx" ON "PipelineRun"("status", "id");

