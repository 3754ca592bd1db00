"""aiokafka-only helpers: connections, topics, offsets, the state epoch and the log probe.

Nothing here imports Faust; every client is made by :mod:`app.kafka.clients`, so broker
address and security settings apply to every connection the project opens.
"""
