import sys

from tritone_server.app import main

sys.exit(main(sys.argv[1:]))
