"""``python -m medigan_zoo.deploy -i IN -o OUT [-m MODEL]``: the synthetic-study app (medigan_zoo.deploy.app)."""
import sys

from medigan_zoo.deploy.app import main

sys.exit(main())
