"""cdp-metrics: National Combating Drugs Outcomes Framework metrics from NDTMS-style extracts."""

__version__ = "0.1.0"
CONTRACT_VERSION = 2  # the data contract these outputs follow (JSON "contract")
