from g60_operator.cli import main

main()
