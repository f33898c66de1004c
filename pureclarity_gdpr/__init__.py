"""Pass every GDPR erasure in a Django shop on to PureClarity."""

__version__ = "0.1.0.dev0"
