import sys

if sys.argv[1:2] == ["soak"]:
    from bench.soak import main as soak

    sys.exit(soak(sys.argv[2:]))

if sys.argv[1:2] == ["compare"]:
    from bench.compare import main as compare

    sys.exit(compare(sys.argv[2:]))

if sys.argv[1:2] == ["client"]:
    from bench.client import main as client

    sys.exit(client(sys.argv[2:]))

if sys.argv[1:2] == ["threads"]:
    from bench.threads import main as threads

    sys.exit(threads(sys.argv[2:]))

if sys.argv[1:2] == ["analytics"]:
    from bench.analytics import main as analytics

    sys.exit(analytics(sys.argv[2:]))

from bench.runner import main

sys.exit(main())
