#!/usr/bin/env bash
# provisioned sub_start.sh
