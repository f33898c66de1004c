"""Pass every GDPR erasure in a Django shop on to PureClarity."""

import logging

# A library leaves handlers to the project: without this, Python's last-resort
# handler would print our warnings on stderr a second time in commands.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0.dev0"
