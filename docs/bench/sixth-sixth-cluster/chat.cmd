== 6 nodes; palaver bench chat --users 10000 --rate 1000 --duration 30
