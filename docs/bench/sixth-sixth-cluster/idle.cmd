== 6 nodes; palaver bench idle --users 100000 --hold 40 --sources 32
