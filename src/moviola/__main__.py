from moviola.cli import main

main()
