-- AlterTable
ALTER TABLE "PipelineRun" ADD COLUMN     "rerunOf" TEXT;

-- AlterTable
ALTER TABLE "NodeRun" ADD COLUMN     "outputRefs" TEXT,
ADD COLUMN     "reusedFrom" TEXT;

