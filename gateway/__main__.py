"""`python -m gateway` is `ocpp-gateway`."""

import sys

from gateway.cli import main

sys.exit(main())
