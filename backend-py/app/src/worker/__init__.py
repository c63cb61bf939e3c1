"""Background workers: jobs that run beside the API, driving gateways like a controller."""
