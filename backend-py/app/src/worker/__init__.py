"""Background workers: jobs beside the API that drive gateways, as controllers do."""
