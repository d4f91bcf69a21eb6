"""Message brokers (issue 14): how to reach one (`endpoint`), publishing one message
(`publish`), and the consumers behind broker triggers (`consume`).

This package sits between the store and its users (`worker`, `triggers`): it imports the
spec and auth (a connection's password is a `Secret`) and the broker clients, never the
store's implementation, and nothing above it. The clients are imported when a broker of
their kind is first used, so a worker without brokers loads none of them.
"""
