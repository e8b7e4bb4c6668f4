from services.watchdog.service import main

main()
