from services.sources.service import main

main()
