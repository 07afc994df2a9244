# Deployment: dist/ artifacts, the CloudFormation template and EMR steps rendered from deploy/jobs.yaml.
.PHONY: package-jars package-emr deploy-render cfn-lint test-deploy test-package-emr

package-jars: setup ## build our DynamoDB log store jar (jvm/logstore) into dist/jars/auditlake-logstore.jar
	$(PY) dev/dist.py --jars

package-emr: setup ## build dist/ plus dist/auditlake-pyenv.tar.gz, the Python 3.11 environment for EMR (slow: downloads the dependencies)
	$(PY) dev/dist.py --emr-archive

deploy-render: setup ## regenerate deploy/cloudformation/auditlake.yaml and deploy/emr/steps.json from deploy/jobs.yaml
	$(PY) dev/deploy_render.py

cfn-lint: setup ## cfn-lint every CloudFormation template in deploy/cloudformation
	$(VENV)/bin/cfn-lint deploy/cloudformation/*.yaml

test-deploy: setup ## the deployment tests: wheel, clean-env job runs, template, EMR steps, README commands
	$(PY) -m pytest -q tests/test_deploy.py tests/test_packaging.py tests/test_job_scripts.py

test-package-emr: package-emr ## build the EMR archive, unpack it elsewhere and import everything with its own python (slow)
	$(PY) dev/check_emr_archive.py dist/auditlake-pyenv.tar.gz
