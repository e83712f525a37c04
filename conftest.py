"""Root conftest: the real local servers every test may use (HTTP, Slack stand-in, SMTP, Kafka, PostgreSQL)."""

pytest_plugins = [
    "tests.servers.http",
    "tests.servers.slack",
    "tests.servers.smtp",
    "tests.servers.kafka",
    "tests.servers.postgres",
    "tests.reliability.log_guard",  # fails any test whose logs or outputs contain a test secret
]
