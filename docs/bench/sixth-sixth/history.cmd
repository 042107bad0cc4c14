== palaver bench history --users 100 --history 500 --page 20 --duration 10
