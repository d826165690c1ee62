from mpretriever.cli.app import main

main()
