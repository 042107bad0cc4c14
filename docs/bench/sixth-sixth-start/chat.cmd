== palaver bench chat --users 10000 --rate 10100 --duration 30
