print("rcu-stress")
