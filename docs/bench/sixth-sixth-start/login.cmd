== palaver bench login --users 20000 --rate 5050 --duration 10 --sources 32
