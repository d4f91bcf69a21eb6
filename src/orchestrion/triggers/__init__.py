"""What starts runs: cron schedules, events, finished runs, backfills (see `scheduler`)."""
