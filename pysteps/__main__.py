from pysteps.cli import main

raise SystemExit(main())
