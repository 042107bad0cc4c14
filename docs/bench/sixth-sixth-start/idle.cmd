== palaver bench idle --users 19000 --hold 40
