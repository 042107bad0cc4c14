== palaver bench chat --users 10000 --rate 10000 --duration 30
