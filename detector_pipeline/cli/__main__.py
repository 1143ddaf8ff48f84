import sys

from detector_pipeline.cli import main

sys.exit(main())
