== palaver bench login --users 20000 --rate 5000 --duration 10 --sources 32
