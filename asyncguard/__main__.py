from asyncguard.cli import main

raise SystemExit(main())
