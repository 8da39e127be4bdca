import { cronJobs } from "convex/server";
import { internal } from "./_generated/api";

const crons = cronJobs();

// Every 15 minutes, page through connections and schedule one sync action
// each (metricsSync.scheduleSyncPage); no single action syncs everything.
crons.interval("sync connection metrics", { minutes: 15 }, internal.metricsSync.scheduleSyncPage, {
  statusIndex: 0,
  cursor: null,
});

export default crons;
