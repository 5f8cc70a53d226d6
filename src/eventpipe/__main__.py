from eventpipe.cli.main import main

main()
