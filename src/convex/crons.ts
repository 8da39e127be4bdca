import { cronJobs } from "convex/server";
import { internal } from "./_generated/api";

const crons = cronJobs();

// Every minute, start a sync for the connections that are due (nextSyncAt passed), one action per group of up to 25
// connections of any projects (sync/schedule.ts scheduleDueSyncs). Each connection is due once per SYNC_INTERVAL_MINUTES,
// later after failures, never while it waits for the user (sync/policy.ts).
crons.interval("sync due connection metrics", { minutes: 1 }, internal.sync.schedule.scheduleDueSyncs, {});

// Once a day, delete metric points and audit entries older than their retention (jobs/retention.ts).
crons.daily("delete expired metrics and audit entries", { hourUTC: 3, minuteUTC: 17 }, internal.jobs.retention.start, {});

// Every 5 minutes, resume a key rotation whose batch chain died (keyRotation.resumeStalled; one read when none runs).
crons.interval("resume a stalled key rotation", { minutes: 5 }, internal.keyRotation.resumeStalled, {});

// Every 10 minutes, delete rate-limit buckets that have refilled (rateLimits.deleteRefilledBuckets): a missing bucket
// is a full one, so the table holds only buckets in use, however many sources fail once.
crons.interval("delete refilled rate-limit buckets", { minutes: 10 }, internal.access.rateLimits.deleteRefilledBuckets, {});

export default crons;
