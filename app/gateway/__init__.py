"""``orderstats gateway``: HTTP in, Kafka out (README, "The gateway").

A separate, stateless process: it validates each order exactly as the workers do
(app/order.py, with the same event mapping), checks that the caller's API key may submit
for the order's store (auth.py), produces it keyed and partitioned on the workers' direct
path with acks=all from an idempotent producer (ingest.py), and answers 202 only once the
broker has acknowledged it. app.py holds the HTTP server and its routes.
"""
