"""`python -m bench [--chargers N ...]`: the connect-many benchmark; options go to `bench.connect_many`."""

import sys

from bench.connect_many import main

sys.exit(main(sys.argv[1:]))
