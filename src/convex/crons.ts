import { cronJobs } from "convex/server";
import { internal } from "./_generated/api";

const crons = cronJobs();

// Every minute, start a sync for the connections that are due (nextSyncAt passed), one action per
// project group (metricsSync.scheduleDueSyncs). Each connection is due once per SYNC_INTERVAL_MINUTES.
crons.interval("sync due connection metrics", { minutes: 1 }, internal.metricsSync.scheduleDueSyncs, {});

// Once a day, delete metric points and audit entries older than their retention (retention.ts).
crons.daily("delete expired metrics and audit entries", { hourUTC: 3, minuteUTC: 17 }, internal.retention.start, {});

// Every 5 minutes, resume a key rotation whose batch chain died (keyRotation.resumeStalled; one read when none runs).
crons.interval("resume a stalled key rotation", { minutes: 5 }, internal.keyRotation.resumeStalled, {});

export default crons;
