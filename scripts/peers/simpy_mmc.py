#!/usr/bin/env python3
"""The M/M/c model of statesim's speed benchmark, written for SimPy.

Poisson arrivals at rate lam = rho * c * mu, c FIFO servers, exponential service of mean 1/mu.
  --variant random: each request joins a uniformly random server's own queue (c x M/M/1),
                    statesim's `policy = "random"` over c single-worker servers;
  --variant mmc:    one shared FIFO queue in front of c workers (M/M/c), statesim's one server
                    with c workers.
Exactly N requests arrive and the run ends when the last has left, so SimPy processes 2N model
events (an arrival and a departure each). Prints one line: RESULT {json} with the mean and p99
response time (in units of the mean service time) so the model can be checked against theory.
"""
import argparse
import json
import math
import random
import time

import simpy


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=["random", "mmc"], default="random")
    parser.add_argument("--n", type=int, default=1_000_000, help="requests to simulate")
    parser.add_argument("--c", type=int, default=8, help="servers (random) or workers (mmc)")
    parser.add_argument("--rho", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    mu = 1.0
    lam = args.rho * args.c * mu
    rng = random.Random(args.seed)
    responses = []

    env = simpy.Environment()
    if args.variant == "random":
        servers = [simpy.Resource(env, capacity=1) for _ in range(args.c)]
    else:
        shared = simpy.Resource(env, capacity=args.c)

    def request(resource):
        arrived = env.now
        with resource.request() as turn:
            yield turn
            yield env.timeout(rng.expovariate(mu))
        responses.append(env.now - arrived)

    def arrivals():
        for _ in range(args.n):
            yield env.timeout(rng.expovariate(lam))
            resource = servers[rng.randrange(args.c)] if args.variant == "random" else shared
            env.process(request(resource))

    started = time.perf_counter()
    env.process(arrivals())
    env.run()
    elapsed = time.perf_counter() - started
    responses.sort()
    p99 = responses[min(len(responses) - 1, math.ceil(0.99 * len(responses)) - 1)]
    print("RESULT " + json.dumps({
        "variant": args.variant, "requests": len(responses), "events": 2 * len(responses),
        "mean": math.fsum(responses) / len(responses), "p99": p99, "sim_s": elapsed,
    }))


if __name__ == "__main__":
    main()
