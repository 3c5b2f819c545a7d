-- CreateTable
CREATE TABLE "ReadinessProbe" (
    "instanceId" TEXT NOT NULL PRIMARY KEY,
    "checkedAt" DATETIME NOT NULL
);

