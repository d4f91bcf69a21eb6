"""Workers: claim task runs, run their attempts (in threads, child processes or a cluster), keep
their leases alive, and report each outcome through the store. What happens next is decided by the
planner, never here."""
