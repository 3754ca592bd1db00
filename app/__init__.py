"""orderstats: live per-store order statistics on Faust and Apache Kafka."""
