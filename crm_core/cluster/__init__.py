"""Several `hotline serve` nodes on one PostgreSQL (docs/deploy.md).

Built on the database the nodes already share, with no broker and no consensus of our own:
a session-level advisory lock is a lease (`lease.py`), its epoch row fences the old holder
out (`fence.py`), LISTEN/NOTIFY carries the messages between nodes (`fanout.py`), and each
node's heartbeat row says who is up and which desktops it holds (`nodes.py`). `runtime.py`
puts them together; a single node (SQLite, `make run`) uses `SingleNode`, which is always
the leader of everything and talks to nobody.
"""
