"""Test harness: throwaway real servers (RabbitMQ, MariaDB, Prometheus) and the service processes."""
