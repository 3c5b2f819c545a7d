-- AlterTable
ALTER TABLE "PipelineRun" ADD COLUMN "rerunOf" TEXT;

-- AlterTable
ALTER TABLE "NodeRun" ADD COLUMN "outputRefs" TEXT;
ALTER TABLE "NodeRun" ADD COLUMN "reusedFrom" TEXT;

