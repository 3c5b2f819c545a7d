-- CreateTable
CREATE TABLE "ReadinessProbe" (
    "instanceId" TEXT NOT NULL,
    "checkedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "ReadinessProbe_pkey" PRIMARY KEY ("instanceId")
);

