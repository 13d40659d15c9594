#!/usr/bin/env node
// Package entry: the compiled CLI lives in dist/ (npm install builds it through the prepare script).
import '../dist/src/cli/main.js';
