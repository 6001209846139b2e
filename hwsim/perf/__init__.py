"""hwsim/perf"""
