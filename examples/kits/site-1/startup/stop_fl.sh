#!/usr/bin/env bash
# provisioned stop_fl.sh
